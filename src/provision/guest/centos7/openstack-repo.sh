{{install_key}}
{{imported}} || rpm --import {{key_path}}
{{install_repo}}
yum clean all
