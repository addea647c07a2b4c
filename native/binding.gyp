{
  # grokpipe's optional native kernels: BatchMatMul on a CBLAS library loaded at run time
  # (dlopen), so the addon builds without BLAS headers and fails soft where no BLAS is present.
  "targets": [
    {
      "target_name": "grokpipe_blas",
      "sources": [
        "src/blas.cc",
        "src/attention.cc",
        "src/adamw.cc",
        "src/grad_filter.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno"],
      "libraries": ["-ldl"]
    }
  ]
}
