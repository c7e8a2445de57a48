#pragma once
// The light of an extended source (a galaxy) as an elliptical profile, to be subtracted from
// the frame before the stars on its disc are measured (pipeline/photometry_step.cpp). A star
// fitted on a galaxy's disc with the mesh sky alone is pulled along the disc's gradient and
// measured too bright, and the disc left in the star-subtracted residual makes noise bumps
// look like stars there (docs/pipeline.md, "Galaxies").
//
// Method (the isophote profile of Jedrzejewski 1987, MNRAS 226, 747, with one ellipse for the
// whole source, as the simulator's galaxies and most small galaxies have):
//  1. the source's extent: the median of the background-subtracted pixels over circular
//     annuli 1 px wide, out to where it first falls to `level` (ADU per pixel);
//  2. its ellipse (axis ratio, position angle): the one whose elliptical annuli leave the
//     smallest mean absolute deviation of the pixels within that extent (at most
//     `max_shape_px`) about their annulus' median (coarse to fine over axis ratio 0.25-1 and
//     angle in steps of 15 then 2.5 degrees; ~30 candidates);
//  3. its profile: the median over elliptical annuli 1 px wide in semi-major axis, out to
//     `max_a_px` or where it first falls to zero (the sky the mesh background left).
// Medians make the stars on the disc (and its own core's cusp, within ~1 px) a minor
// perturbation; pixels with a bit of `exclude` set are left out.
// Units: pixels (0-based, centres at integers), ADU of the background-subtracted frame.
// Thread-safety: pure functions; the profile is a plain value.
#include <vector>

#include "psfphot/core/image.hpp"
#include "psfphot/core/mask.hpp"

namespace psfphot {

struct EllipticalProfile {
  double x = 0, y = 0;        // centre, px
  double axis_ratio = 1.0;    // b / a, in (0, 1]
  double angle_rad = 0.0;     // major axis, from +x towards +y
  double extent_px = 0;       // step 1's circular extent (0: nothing above `level`)
  std::vector<double> light;  // ADU per px at semi-major axis a = i px (i >= 0), all > 0

  bool empty() const { return light.empty(); }
  // The elliptical radius (semi-major axis of the isophote through (px, py)).
  double semi_major(double px, double py) const;
  // The profile at (px, py): linear in the semi-major axis between annuli, 0 beyond the last.
  double at(double px, double py) const;
  // Largest semi-major axis with light (px); pixels farther out are untouched.
  double outer_a() const { return light.empty() ? 0.0 : static_cast<double>(light.size()); }
};

// Steps 1-3 above for the source centred at (cx, cy) in `img` (background subtracted).
// Returns an empty profile when the circular extent is below 3 px (nothing to model).
EllipticalProfile measure_elliptical_profile(ImageView<const float> img,
                                             ImageView<const MaskBits> msk, MaskBits exclude,
                                             double cx, double cy, double level, int max_a_px,
                                             int max_shape_px);

// img -= the profile, over the pixels within its outer ellipse (clipped to the image).
void subtract_profile(ImageView<float> img, const EllipticalProfile& p);

}  // namespace psfphot
