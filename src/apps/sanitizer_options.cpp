// Sanitizer defaults of the psfphot program, compiled in only under AddressSanitizer
// (CMakePresets.json "asan", docs/robustness.md).
//
// psfphot always initialises MPI (a single `psfphot run` is an MPI singleton), and
// OpenMPI/PMIx allocate in plugins they dlclose at MPI_Finalize: LeakSanitizer then sees
// leaks whose stacks end in "<unknown module>", which no suppression can name. Leak
// detection is therefore off for this program only; ASan's memory errors and UBSan stay
// on, and every test program (the libraries' code, without MPI) keeps leak detection.
// ASAN_OPTIONS in the environment still overrides this.
#if defined(__SANITIZE_ADDRESS__)
extern "C" const char* __asan_default_options() {
  return "detect_leaks=0";
}
#endif
