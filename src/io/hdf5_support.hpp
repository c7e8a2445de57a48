#pragma once
// Private to src/io: RAII for HDF5 ids, HDF5 error stacks turned into CatalogueError,
// and the small attribute / row helpers the catalogue writer and reader share.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "psfphot/io/catalogue.hpp"

namespace psfphot::io::h5 {

// Owns one HDF5 id of any kind; releases it with H5Idec_ref.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

// Silences HDF5's automatic error printing while alive; restores the previous handler.
class QuietErrors {
 public:
  QuietErrors();
  ~QuietErrors();
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The current HDF5 error stack, innermost (most specific) message first, and clears it.
std::string take_error_stack();
// The same text, leaving the stack in place (for a decision before check()/fail()).
std::string peek_error_stack();

// Throw CatalogueError(path, what + ": " + HDF5's innermost message) carrying the stack.
[[noreturn]] void fail(const std::string& path, const std::string& what);
// Return id/status, or fail(path, what) when negative.
hid_t check(hid_t id, const std::string& path, const std::string& what);
herr_t check_status(herr_t st, const std::string& path, const std::string& what);

// Attributes on `obj` (a file, dataset or group id). Strings are variable-length UTF-8
// (h5py returns them as str).
void write_attr(hid_t obj, const std::string& name, const std::string& value,
                const std::string& path);
void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                const std::string& path);
void write_attr(hid_t obj, const std::string& name, std::int64_t value, const std::string& path);
bool has_attr(hid_t obj, const std::string& name);
std::string read_string_attr(hid_t obj, const std::string& name, const std::string& path);
std::int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& path);

// A 1-D dataset's current number of rows.
std::int64_t rows(hid_t dset, const std::string& path);

// Grow (or shrink) `dset` to `start + count` rows and write `count` records of `mem_type`
// from `data` at row `start`.
void write_rows(hid_t dset, hid_t mem_type, std::int64_t start, std::int64_t count,
                const void* data, const std::string& path, const std::string& what);
// Read `count` rows from `start` into `out` with `mem_type` (which may hold a subset of
// the stored members).
void read_rows(hid_t dset, hid_t mem_type, std::int64_t start, std::int64_t count, void* out,
               const std::string& path, const std::string& what);

// A dataset of fixed-length strings, one per element (astropy's table metadata).
void write_string_dataset(hid_t file, const std::string& name,
                          const std::vector<std::string>& lines, const std::string& path);

}  // namespace psfphot::io::h5
