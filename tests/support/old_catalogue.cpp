#include "support/old_catalogue.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "psfphot/io/catalogue_schema.hpp"

namespace psfphot::test {
namespace {

// Closes an HDF5 id of any kind when it goes out of scope.
struct Id {
  hid_t id;
  explicit Id(hid_t i, const std::string& what) : id(i) {
    if (i < 0) throw std::runtime_error("make_schema_version_1: " + what);
  }
  ~Id() {
    if (id >= 0) H5Idec_ref(id);
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
};

void need(herr_t st, const std::string& what) {
  if (st < 0) throw std::runtime_error("make_schema_version_1: " + what);
}

hid_t vlen_string() {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

std::vector<std::string> read_strings_attr(hid_t obj, const char* name) {
  Id a(H5Aopen(obj, name, H5P_DEFAULT), std::string("open attribute ") + name);
  Id s(H5Aget_space(a.id), name);
  std::vector<char*> p(static_cast<std::size_t>(H5Sget_simple_extent_npoints(s.id)));
  Id t(vlen_string(), "string type");
  need(H5Aread(a.id, t.id, p.data()), std::string("read attribute ") + name);
  std::vector<std::string> out(p.begin(), p.end());
  need(H5Dvlen_reclaim(t.id, s.id, H5P_DEFAULT, p.data()), name);
  return out;
}

void write_strings_attr(hid_t obj, const char* name, const std::vector<std::string>& v) {
  if (H5Aexists(obj, name) > 0) need(H5Adelete(obj, name), std::string("delete ") + name);
  Id t(vlen_string(), "string type");
  hsize_t n = v.size();
  Id s(H5Screate_simple(1, &n, nullptr), name);
  Id a(H5Acreate2(obj, name, t.id, s.id, H5P_DEFAULT, H5P_DEFAULT), name);
  std::vector<const char*> p;
  for (const auto& x : v) p.push_back(x.c_str());
  need(H5Awrite(a.id, t.id, p.data()), std::string("write attribute ") + name);
}

// The astropy metadata: a 1-D dataset of fixed-length, NUL-padded strings.
std::vector<std::string> read_lines(hid_t file, const std::string& name) {
  Id d(H5Dopen2(file, name.c_str(), H5P_DEFAULT), "open " + name);
  Id t(H5Dget_type(d.id), name);
  const std::size_t width = H5Tget_size(t.id);
  Id s(H5Dget_space(d.id), name);
  const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(s.id));
  std::vector<char> buf(width * n);
  need(H5Dread(d.id, t.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read " + name);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string l(buf.data() + i * width, width);
    out.push_back(l.substr(0, l.find('\0')));
  }
  return out;
}

void write_lines(hid_t file, const std::string& name, const std::vector<std::string>& lines) {
  need(H5Ldelete(file, name.c_str(), H5P_DEFAULT), "delete " + name);
  std::size_t width = 1;
  for (const auto& l : lines) width = std::max(width, l.size());
  std::vector<char> buf(width * lines.size(), '\0');
  for (std::size_t i = 0; i < lines.size(); ++i) lines[i].copy(buf.data() + i * width, width);
  Id t(H5Tcopy(H5T_C_S1), name);
  need(H5Tset_size(t.id, width), name);
  need(H5Tset_strpad(t.id, H5T_STR_NULLPAD), name);
  hsize_t n = lines.size();
  Id s(H5Screate_simple(1, &n, nullptr), name);
  Id d(H5Dcreate2(file, name.c_str(), t.id, s.id, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
       "create " + name);
  need(H5Dwrite(d.id, t.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "write " + name);
}

// A column version 1 did not have (column_names order == frame_columns() order).
bool newer_than_1(const std::string& column) {
  return io::frame_column_since(column) > 1;
}

// The astropy meta without the newer columns' lines, stating version 1.
std::vector<std::string> meta_of_version_1(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    bool drop = false;
    for (const auto& c : io::frame_columns())
      drop =
          drop || (newer_than_1(c.name) && l.starts_with(std::string("- {name: ") + c.name + ","));
    if (drop) continue;
    if (l == "- {psfphot_schema_version: '2'}")
      out.emplace_back("- {psfphot_schema_version: '1'}");
    else
      out.push_back(l);
  }
  return out;
}

}  // namespace

void make_schema_version_1(const std::string& path) {
  static_assert(io::kCatalogueSchemaVersion == 2,
                "a schema version after 2: check what make_schema_version_1 must undo");
  Id file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + path);

  // The rows and how the table was stored.
  std::vector<io::FrameRow> rows;
  std::vector<std::string> names, units, docs, status;
  hsize_t chunk = 64;
  bool compressed = false;
  {
    Id d(H5Dopen2(file.id, "frames", H5P_DEFAULT), "open /frames");
    Id s(H5Dget_space(d.id), "/frames space");
    rows.resize(static_cast<std::size_t>(H5Sget_simple_extent_npoints(s.id)));
    Id t(io::make_frame_row_type(), "frame type");
    if (!rows.empty())
      need(H5Dread(d.id, t.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), "read /frames");
    Id dcpl(H5Dget_create_plist(d.id), "/frames properties");
    need(H5Pget_chunk(dcpl.id, 1, &chunk), "/frames chunk");
    compressed = H5Pget_nfilters(dcpl.id) > 0;
    names = read_strings_attr(d.id, "column_names");
    units = read_strings_attr(d.id, "column_units");
    docs = read_strings_attr(d.id, "column_descriptions");
    status = read_strings_attr(d.id, "status_names");
  }
  need(H5Ldelete(file.id, "frames", H5P_DEFAULT), "delete /frames");

  // The version-1 table with the same rows (HDF5 converts member by member, by name).
  {
    Id ft(io::make_frame_file_type(1), "version-1 type");
    Id mt(io::make_frame_read_type(1), "version-1 read type");
    hsize_t n = rows.size(), unlimited = H5S_UNLIMITED;
    Id s(H5Screate_simple(1, &n, &unlimited), "space");
    Id dcpl(H5Pcreate(H5P_DATASET_CREATE), "properties");
    need(H5Pset_chunk(dcpl.id, 1, &chunk), "chunk");
    if (compressed) {
      need(H5Pset_shuffle(dcpl.id), "shuffle");
      need(H5Pset_deflate(dcpl.id, 4), "deflate");
    }
    const io::FrameRow fill = io::frame_fill_value();
    need(H5Pset_fill_value(dcpl.id, mt.id, &fill), "fill value");
    Id d(H5Dcreate2(file.id, "frames", ft.id, s.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT),
         "create version-1 /frames");
    if (!rows.empty())
      need(H5Dwrite(d.id, mt.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), "write /frames");
    std::vector<std::string> n1, u1, d1;
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (newer_than_1(names[i])) continue;
      n1.push_back(names[i]);
      u1.push_back(units.at(i));
      d1.push_back(docs.at(i));
    }
    write_strings_attr(d.id, "column_names", n1);
    write_strings_attr(d.id, "column_units", u1);
    write_strings_attr(d.id, "column_descriptions", d1);
    write_strings_attr(d.id, "status_names", status);
  }
  for (const char* meta : {"frames.__table_column_meta__", "stars.__table_column_meta__"})
    write_lines(file.id, meta, meta_of_version_1(read_lines(file.id, meta)));

  need(H5Adelete(file.id, "psfphot_schema_version"), "delete psfphot_schema_version");
  Id s(H5Screate(H5S_SCALAR), "scalar");
  Id a(H5Acreate2(file.id, "psfphot_schema_version", H5T_STD_I64LE, s.id, H5P_DEFAULT, H5P_DEFAULT),
       "create psfphot_schema_version");
  const std::int64_t one = 1;
  need(H5Awrite(a.id, H5T_NATIVE_INT64, &one), "write psfphot_schema_version");
}

}  // namespace psfphot::test
