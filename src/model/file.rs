//! The lab file as written: one serde type per TOML table, unknown keys refused.
//! Values stay as text (with their position in the file) until validation turns them into
//! the typed [`crate::model::Lab`].

use serde::Deserialize;
use toml::Spanned;

/// A whole lab file (`labs/*.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub name: Spanned<String>,
    pub image: Spanned<String>,
    /// Login user created in every guest. Default: `lab`.
    pub user: Option<Spanned<String>>,
    /// DNS domain of the nodes' FQDNs. Default: `lab.test`.
    pub domain: Option<Spanned<String>>,
    #[serde(default)]
    pub networks: Vec<NetworkFile>,
    #[serde(default)]
    pub nodes: Vec<NodeFile>,
    /// Where provisioning gets time and packages. Every key has a default.
    pub provision: Option<ProvisionFile>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionFile {
    /// NTP server the controller follows (the compute nodes follow the controller).
    pub ntp_server: Option<Spanned<String>>,
    /// CentOS 7 trees holding base/updates/extras, tried in order (CentOS 7 is end of life:
    /// its repos live on vault and its copies; a classroom names its local mirror first).
    pub centos_base_urls: Option<Spanned<Vec<Spanned<String>>>>,
    /// The RDO Ocata repository (retired before 7.9; kept in an older vault tree), tried in
    /// order like `centos_base_urls`.
    pub ocata_repo_urls: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    /// External: the host routes it to the internet with NAT.
    Nat,
    /// Internal: node to node only, no host address, no route out.
    Isolated,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFile {
    pub name: Spanned<String>,
    pub kind: Spanned<NetKind>,
    pub cidr: Spanned<String>,
    /// The host's address on a nat network, the nodes' default route. Default: first host.
    pub gateway: Option<Spanned<String>>,
    /// nat only: libvirt answers DNS on the gateway, forwarding to the host's resolvers.
    /// Default: true. Set false for an offline lab (no dnsmasq runs at all).
    pub dns: Option<Spanned<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Controller,
    Compute,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    pub name: Spanned<String>,
    pub role: Spanned<Role>,
    /// Default: 1.
    pub vcpus: Option<Spanned<i64>>,
    /// Default: 2GiB.
    pub memory: Option<Spanned<String>>,
    /// Default: 10GB (raised to the image's virtual size when smaller).
    pub disk: Option<Spanned<String>>,
    #[serde(default)]
    pub nics: Vec<NicFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicFile {
    pub network: Spanned<String>,
    pub address: Spanned<String>,
    /// Default: derived from lab, node and network names.
    pub mac: Option<Spanned<String>>,
}
