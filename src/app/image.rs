//! `lab image build` and `lab image recipe-hash`: which images are built, and a built image
//! put into the cache or at a path of the user's.

use crate::failure::{ExitClass, Failure};
use std::path::{Path, PathBuf};

use crate::build::{BuildOptions, BuildReport};
use crate::cache::Cache;
use crate::image::{Image, Profile};
use crate::progress::Progress;

/// The catalogue image `name`, when it is built here rather than downloaded (debian12).
pub fn buildable<'a>(cache: &'a Cache, name: &str) -> crate::failure::Result<&'a Image> {
    let image = cache.image(name)?;
    if image.url.is_some() || image.profile != Profile::Debian12 {
        return Err(Failure::new(
            ExitClass::Usage,
            format!("image {name} is downloaded, not built: run `lab image pull {name}`"),
        ));
    }
    Ok(image)
}

/// Builds image `name` to `out`, or else into the cache (built beside its cached path, then
/// imported); returns the report and where the image is.
pub fn build_image(
    cache: &Cache,
    name: &str,
    opts: &BuildOptions,
    out: Option<&Path>,
    progress: &dyn Progress,
) -> crate::failure::Result<(BuildReport, PathBuf)> {
    let image = buildable(cache, name)?;
    if let Some(out) = out {
        let report = crate::build::build(image, opts, out, progress)?;
        return Ok((report, out.to_path_buf()));
    }
    let tmp = cache.image_path(name).with_extension("build.qcow2");
    let report = crate::build::build(image, opts, &tmp, progress)?;
    let imported = cache.import(name, &tmp);
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(crate::build::recipe_file(&tmp));
    Ok((report, imported?))
}
