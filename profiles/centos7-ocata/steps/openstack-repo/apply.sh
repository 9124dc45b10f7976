install -m 0644 {{staged_key}} {{key_path}}
rpm -q {{key_rpm}} >/dev/null || rpm --import {{key_path}}
install -m 0644 {{staged_repo}} {{repo_file}}
yum clean all
