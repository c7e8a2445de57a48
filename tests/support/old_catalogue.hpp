#pragma once
// Catalogues of an older schema version for the tests, made from a current one in the
// test itself (no binary fixture in the repository). io/catalogue_schema.hpp lists what
// each version changed.
#include <string>

namespace psfphot::test {

// Rewrites the closed catalogue at `path`, in place, the way schema version 1 stored it:
// /frames recreated with the version-1 row (1208 bytes, no bias_adu / dark_bias_adu)
// holding the same rows, same chunking and compression, its column_* attributes and its
// astropy metadata without the two columns, and psfphot_schema_version = 1 (root attribute
// and both tables' astropy meta). /stars and the other attributes are left alone: version
// 2 did not change them. Throws std::runtime_error naming the step that failed.
void make_schema_version_1(const std::string& path);

}  // namespace psfphot::test
