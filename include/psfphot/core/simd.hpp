#pragma once
// PSFPHOT_VECTOR_CLONES marks a hot pixel loop to be compiled twice, for baseline x86-64
// (SSE2, 4 floats per instruction) and for AVX2 (8), the version for the running CPU
// chosen once at load time (GCC/Clang function multi-versioning through an ifunc). AVX2
// does not enable FMA, so both versions do the same IEEE operations in the same order:
// identical results on every machine, and no -march flag that would tie the build to one.
// Elsewhere (other architectures, or -DPSFPHOT_NO_CLONES) it expands to nothing.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(PSFPHOT_NO_CLONES)
#define PSFPHOT_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PSFPHOT_VECTOR_CLONES
#endif
