pub fn text(
    _lab: &crate::model::Lab,
    _s: &crate::secrets::LabSecrets,
    from: Option<&str>,
) -> Option<String> {
    Some(format!("GUIDE from {from:?}\n"))
}
