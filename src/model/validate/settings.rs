//! The `[provision]` settings: the NTP server and the repository urls.

use toml::Spanned;

use super::{ValidationError, Validator};
use crate::model::file::ProvisionFile;
use crate::model::lab::Settings;

impl Validator {
    pub(super) fn settings(&mut self, p: &ProvisionFile) -> Option<Settings> {
        let host = |s: &String| {
            !s.is_empty()
                && s.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
        };
        let ntp_server = self.check(
            p.ntp_server.as_ref().expect("defaulted"),
            "provision.ntp_server",
            |s| {
                host(s)
                    .then(|| s.clone())
                    .ok_or(ValidationError::BadSetting {
                        key: "ntp_server",
                        value: s.clone(),
                        fix: "give a host name or address, like pool.ntp.org",
                    })
            },
        );
        let centos = p.centos_base_urls.as_ref().expect("defaulted");
        let centos_base_urls = self.urls(centos, "centos_base_urls");
        let ocata = p.ocata_repo_urls.as_ref().expect("defaulted");
        let ocata_repo_urls = self.urls(ocata, "ocata_repo_urls");
        Some(Settings {
            ntp_server: ntp_server?,
            centos_base_urls: centos_base_urls?
                .iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            ocata_repo_urls: ocata_repo_urls?,
        })
    }

    /// A list of repository urls: not empty, each an http(s) url that yum and the shell take
    /// as one word. Problems name the item, like `provision.centos_base_urls[1]`.
    fn urls(
        &mut self,
        list: &Spanned<Vec<Spanned<String>>>,
        key: &'static str,
    ) -> Option<Vec<String>> {
        if list.get_ref().is_empty() {
            let error = ValidationError::EmptyUrlList(key);
            self.push(error, format!("provision.{key}"), list.span());
            return None;
        }
        let before = self.problems.len();
        let mut out = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let url = self.check(item, &format!("provision.{key}[{i}]"), |s| {
                let ok = (s.starts_with("http://") || s.starts_with("https://"))
                    && !s
                        .contains(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == '$');
                ok.then(|| s.clone()).ok_or(ValidationError::BadSetting {
                    key,
                    value: s.clone(),
                    fix: "give an http:// or https:// url without spaces or quotes",
                })
            });
            out.extend(url);
        }
        (self.problems.len() == before).then_some(out)
    }
}
