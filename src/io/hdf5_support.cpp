#include "hdf5_support.hpp"

#include <algorithm>

namespace psfphot::io::h5 {

void Handle::reset() {
  if (id_ >= 0) H5Idec_ref(id_);
  id_ = H5I_INVALID_HID;
}

QuietErrors::QuietErrors() {
  H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}
QuietErrors::~QuietErrors() {
  H5Eset_auto2(H5E_DEFAULT, func_, data_);
}

namespace {

std::string minor_text(hid_t min_num) {
  char buf[256] = {0};
  H5E_type_t type;
  if (H5Eget_msg(min_num, &type, buf, sizeof buf) < 0) return {};
  return buf;
}

// HDF5's I/O errors read "file write failed: time = <ctime with its newline>, filename =
// ..., errno = 28, error message = 'No space left on device', buf = 0x..., ...": keep it
// on one line, drop the time and everything after the system's message.
std::string tidy(std::string d) {
  d.erase(std::remove(d.begin(), d.end(), '\n'), d.end());
  if (auto t = d.find("time = "); t != std::string::npos) {
    if (auto comma = d.find(", ", t); comma != std::string::npos) d.erase(t, comma + 2 - t);
  }
  const std::string key = "error message = '";
  if (auto m = d.find(key); m != std::string::npos) {
    if (auto q = d.find('\'', m + key.size()); q != std::string::npos) d.resize(q + 1);
  }
  return d;
}

herr_t collect(unsigned /*n*/, const H5E_error2_t* e, void* out) {
  auto* lines = static_cast<std::vector<std::string>*>(out);
  std::string line = e->func_name ? e->func_name : "?";
  line += ": ";
  line += tidy(e->desc ? e->desc : "");
  std::string minor = minor_text(e->min_num);
  if (!minor.empty()) line += " (" + minor + ")";
  lines->push_back(std::move(line));
  return 0;
}

}  // namespace

std::string take_error_stack() {
  std::string out = peek_error_stack();
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string peek_error_stack() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &lines);
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += "\n";
    out += l;
  }
  return out;
}

void fail(const std::string& path, const std::string& what) {
  std::string stack = take_error_stack();
  std::string innermost = stack.substr(0, stack.find('\n'));
  // "H5FD_sec2_write: file write failed: ..." -> keep the description, drop the function.
  if (auto colon = innermost.find(": "); colon != std::string::npos)
    innermost = innermost.substr(colon + 2);
  std::string problem = what;
  if (!innermost.empty()) problem += ": " + innermost;
  throw CatalogueError(path, problem, stack);
}

hid_t check(hid_t id, const std::string& path, const std::string& what) {
  if (id < 0) fail(path, what);
  return id;
}

herr_t check_status(herr_t st, const std::string& path, const std::string& what) {
  if (st < 0) fail(path, what);
  return st;
}

namespace {

Handle vlen_string_type() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

void replace_attr(hid_t obj, const std::string& name, hid_t type, hid_t space, const void* data,
                  const std::string& path) {
  if (H5Aexists(obj, name.c_str()) > 0)
    check_status(H5Adelete(obj, name.c_str()), path, "cannot replace attribute " + name);
  Handle a(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), path,
                 "cannot create attribute " + name));
  check_status(H5Awrite(a.get(), type, data), path, "cannot write attribute " + name);
}

}  // namespace

void write_attr(hid_t obj, const std::string& name, const std::string& value,
                const std::string& path) {
  Handle t = vlen_string_type();
  Handle s(H5Screate(H5S_SCALAR));
  const char* p = value.c_str();
  replace_attr(obj, name, t.get(), s.get(), &p, path);
}

void write_attr(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                const std::string& path) {
  Handle t = vlen_string_type();
  hsize_t n = values.size();
  Handle s(H5Screate_simple(1, &n, nullptr));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  replace_attr(obj, name, t.get(), s.get(), ptrs.data(), path);
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value, const std::string& path) {
  Handle s(H5Screate(H5S_SCALAR));
  replace_attr(obj, name, H5T_NATIVE_INT64, s.get(), &value, path);
}

bool has_attr(hid_t obj, const std::string& name) {
  return H5Aexists(obj, name.c_str()) > 0;
}

std::string read_string_attr(hid_t obj, const std::string& name, const std::string& path) {
  Handle a(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), path, "no attribute " + name));
  Handle ftype(check(H5Aget_type(a.get()), path, "attribute " + name));
  if (H5Tget_class(ftype.get()) != H5T_STRING)
    throw CatalogueError(path, "attribute " + name + " is not a string");
  if (H5Tis_variable_str(ftype.get()) > 0) {
    Handle t = vlen_string_type();
    char* p = nullptr;
    check_status(H5Aread(a.get(), t.get(), &p), path, "cannot read attribute " + name);
    std::string out = p ? p : "";
    H5free_memory(p);
    return out;
  }
  std::size_t n = H5Tget_size(ftype.get());
  std::string out(n, '\0');
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), n);
  check_status(H5Aread(a.get(), t.get(), out.data()), path, "cannot read attribute " + name);
  out.resize(std::min(out.find('\0'), out.size()));
  return out;
}

std::int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& path) {
  Handle a(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), path, "no attribute " + name));
  Handle ftype(check(H5Aget_type(a.get()), path, "attribute " + name));
  if (H5Tget_class(ftype.get()) != H5T_INTEGER)
    throw CatalogueError(path, "attribute " + name + " is not an integer");
  std::int64_t v = 0;
  check_status(H5Aread(a.get(), H5T_NATIVE_INT64, &v), path, "cannot read attribute " + name);
  return v;
}

std::int64_t rows(hid_t dset, const std::string& path) {
  Handle s(check(H5Dget_space(dset), path, "cannot get a dataset's dataspace"));
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(s.get()) != 1) throw CatalogueError(path, "table is not 1-D");
  check_status(H5Sget_simple_extent_dims(s.get(), &n, nullptr), path, "dataspace");
  return static_cast<std::int64_t>(n);
}

void write_rows(hid_t dset, hid_t mem_type, std::int64_t start, std::int64_t count,
                const void* data, const std::string& path, const std::string& what) {
  hsize_t size = static_cast<hsize_t>(start + count);
  check_status(H5Dset_extent(dset, &size), path, "cannot extend " + what);
  if (count == 0) return;
  Handle fs(check(H5Dget_space(dset), path, what));
  hsize_t off = static_cast<hsize_t>(start), cnt = static_cast<hsize_t>(count);
  check_status(H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, &off, nullptr, &cnt, nullptr), path,
               what);
  Handle ms(H5Screate_simple(1, &cnt, nullptr));
  check_status(H5Dwrite(dset, mem_type, ms.get(), fs.get(), H5P_DEFAULT, data), path,
               "cannot write " + what);
}

void read_rows(hid_t dset, hid_t mem_type, std::int64_t start, std::int64_t count, void* out,
               const std::string& path, const std::string& what) {
  if (count <= 0) return;
  Handle fs(check(H5Dget_space(dset), path, what));
  hsize_t off = static_cast<hsize_t>(start), cnt = static_cast<hsize_t>(count);
  check_status(H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, &off, nullptr, &cnt, nullptr), path,
               what);
  Handle ms(H5Screate_simple(1, &cnt, nullptr));
  check_status(H5Dread(dset, mem_type, ms.get(), fs.get(), H5P_DEFAULT, out), path,
               "cannot read " + what);
}

void write_string_dataset(hid_t file, const std::string& name,
                          const std::vector<std::string>& lines, const std::string& path) {
  std::size_t width = 1;
  for (const auto& l : lines) width = std::max(width, l.size());
  std::vector<char> buf(width * lines.size(), '\0');
  for (std::size_t i = 0; i < lines.size(); ++i)
    std::copy(lines[i].begin(), lines[i].end(), buf.begin() + static_cast<long>(i * width));
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), width);
  H5Tset_strpad(t.get(), H5T_STR_NULLPAD);  // numpy's 'S' dtype: padded, not terminated
  hsize_t n = lines.size();
  Handle s(H5Screate_simple(1, &n, nullptr));
  Handle d(
      check(H5Dcreate2(file, name.c_str(), t.get(), s.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            path, "cannot create dataset " + name));
  check_status(H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), path,
               "cannot write dataset " + name);
}

}  // namespace psfphot::io::h5
