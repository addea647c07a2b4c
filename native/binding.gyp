{
  # grokpipe's optional native kernels: BatchMatMul on a CBLAS library loaded at run time
  # (dlopen), so the addon builds without BLAS headers and fails soft where no BLAS is present;
  # fused training kernels (kernels.cc, activations.cc, embedding.cc, attention.cc, adamw.cc,
  # grad_filter.cc). Portable: no -march=native (users build it), no -ffast-math, and
  # -ffp-contract=off so that results do not depend on the CPU's FMA; -fno-trapping-math (no effect
  # on values, only on FP exception flags) lets GCC vectorise loops with comparisons (fmath.h's
  # exp), and -fno-math-errno (no effect on values, only on errno) lets it inline sqrt.
  "targets": [
    {
      "target_name": "grokpipe_blas",
      "sources": [
        "src/blas.cc",
        "src/kernels.cc",
        "src/activations.cc",
        "src/embedding.cc",
        "src/attention.cc",
        "src/adamw.cc",
        "src/grad_filter.cc",
        "src/linear.cc",
        "src/positions.cc",
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno"],
      "libraries": ["-ldl"]
    }
  ]
}
