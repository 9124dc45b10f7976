//! The image catalogue (`profiles/<profile>/image.toml`): which guest images a lab can boot.
//! Entries are compiled into the binary so `lab` works from any directory.

use serde::Deserialize;

use crate::units::ByteSize;

/// The guest profile: what differs between guest operating systems (packages, paths,
/// cloud-init quirks), chosen by the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// CentOS 7 with the RDO Ocata repository: the seed's guest.
    Centos7Ocata,
    /// Debian 12 with Debian's own OpenStack client: the guest our CI boots.
    Debian12,
}

impl Profile {
    /// Every profile and its folder under `profiles/` (its `image.toml`, `profile.toml`,
    /// guide texts...): the one table a new profile joins, with its variant above.
    pub const ALL: [(Profile, &'static str); 2] = [
        (Profile::Centos7Ocata, "centos7-ocata"),
        (Profile::Debian12, "debian12"),
    ];

    /// The profile's folder under `profiles/`, which is also its name.
    pub fn dir(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, dir)| *dir)
            .expect("every profile has a line in Profile::ALL")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Qcow2,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageFile {
    name: String,
    description: String,
    url: Option<String>,
    sha256: Option<String>,
    format: Format,
    profile: Profile,
    virtual_size: String,
}

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    pub description: String,
    /// Where `lab image pull` downloads it; `None` for images `lab image build` makes.
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub format: Format,
    pub profile: Profile,
    /// The disk size the image boots with; an overlay is never smaller.
    pub virtual_size: ByteSize,
}

/// All images `lab` knows.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub images: Vec<Image>,
}

impl Catalogue {
    /// The catalogue compiled into this binary. Its files are checked by a unit test, so a
    /// broken entry fails the build's tests rather than a user's run.
    pub fn builtin() -> Catalogue {
        let images = Profile::ALL
            .iter()
            .map(|(_, dir)| {
                let path = format!("{dir}/image.toml");
                let text = crate::profile_files::expect(&path);
                parse(text).unwrap_or_else(|e| panic!("profiles/{path}: {e}"))
            })
            .collect();
        Catalogue { images }
    }

    pub fn get(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name == name)
    }

    pub fn names(&self) -> Vec<String> {
        self.images.iter().map(|i| i.name.clone()).collect()
    }
}

fn parse(text: &str) -> Result<Image, String> {
    let f: ImageFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let virtual_size = f.virtual_size.parse()?;
    if let Some(sum) = &f.sha256
        && (sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(format!("sha256 {sum:?} is not 64 hex digits"));
    }
    Ok(Image {
        name: f.name,
        description: f.description,
        url: f.url,
        sha256: f.sha256,
        format: f.format,
        profile: f.profile,
        virtual_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_parses_and_pins_centos7() {
        let c = Catalogue::builtin();
        let centos = c.get("centos7").unwrap();
        assert_eq!(centos.profile, Profile::Centos7Ocata);
        assert_eq!(centos.virtual_size, ByteSize(8 << 30));
        assert!(
            centos
                .url
                .as_deref()
                .unwrap()
                .ends_with("GenericCloud-2211.qcow2")
        );
        assert_eq!(
            centos.sha256.as_deref(),
            Some("284aab2b23d91318f169ff464bce4d53404a15a0618ceb34562838c59af4adea")
        );
        assert_eq!(c.get("debian12").unwrap().profile, Profile::Debian12);
    }

    #[test]
    fn each_profile_folder_holds_an_image_of_that_profile() {
        let c = Catalogue::builtin();
        for (i, (profile, dir)) in Profile::ALL.iter().enumerate() {
            assert_eq!(c.images[i].profile, *profile, "profiles/{dir}/image.toml");
            assert_eq!(profile.dir(), *dir);
        }
    }

    #[test]
    fn catalogue_entries_refuse_unknown_keys() {
        let err = parse("name='x'\ndescription=''\nformat='qcow2'\nprofile='debian12'\nvirtual_size='1GiB'\nsize=3\n")
            .unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }
}
