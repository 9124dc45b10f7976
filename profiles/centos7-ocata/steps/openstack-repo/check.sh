cmp -s {{staged_key}} {{key_path}} &&
rpm -q {{key_rpm}} >/dev/null &&
cmp -s {{staged_repo}} {{repo_file}}
