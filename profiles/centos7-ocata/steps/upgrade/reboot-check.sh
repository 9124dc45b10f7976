[ "$(rpm -q --last kernel | awk 'NR == 1 {sub(/^kernel-/, "", $1); print $1}')" != "$(uname -r)" ]
