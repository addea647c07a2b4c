/**
 * The git revision of the project that runs a pipeline: the commit checked out in the repository
 * that holds the pipeline file, and whether the work tree differs from it. A manifest records it
 * (`git`), as MLflow records `mlflow.source.git.commit`: not part of any key (a key names a
 * computation, not the code's history), but what `grokpipe runs` shows to tell runs apart.
 */
import { dirname, resolve } from 'node:path';

/** A repository's state. */
export interface GitRevision {
  /** The commit checked out (`git rev-parse HEAD`, 40 hex digits). */
  readonly commit: string;
  /**
   * True when tracked files differ from that commit (staged or not), or the pipeline file itself
   * is not committed: the commit alone does not give back what ran.
   */
  readonly dirty: boolean;
}

/**
 * The revision of the repository that holds `file` (`git rev-parse HEAD`, `git status
 * --porcelain`, in the file's folder).
 * @returns undefined when git is not installed, the file is in no repository, or the repository
 *   has no commit yet. Never throws.
 */
export async function gitRevision(file: string): Promise<GitRevision | undefined> {
  const cwd = dirname(resolve(file));
  try {
    // execa is loaded here: only a run that commits an artifact asks for the revision.
    const { execa } = await import('execa');
    const git = (args: string[]) => execa('git', args, { cwd, reject: false, timeout: 10_000 });
    const [head, tracked, self] = await Promise.all([
      git(['rev-parse', '--verify', '--quiet', 'HEAD']),
      git(['status', '--porcelain', '--untracked-files=no']),
      git(['status', '--porcelain', '--untracked-files=all', '--', resolve(file)]),
    ]);
    const commit = String(head.stdout).trim();
    if (head.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(commit)) return undefined;
    const dirty = String(tracked.stdout).trim() !== '' || String(self.stdout).trim() !== '';
    return { commit, dirty };
  } catch {
    return undefined;
  }
}
