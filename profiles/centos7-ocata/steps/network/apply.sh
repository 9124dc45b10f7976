for f in {{ifcfg}}; do
  [ -e "$f" ] || continue
  case $f in */ifcfg-lo) continue ;; esac
  if ! grep -qx NM_CONTROLLED=no "$f"; then
    sed -i -e '/^NM_CONTROLLED=/d' "$f"
    echo NM_CONTROLLED=no >> "$f"
  fi
done
# Disabled, not removed: cloud-final fails on older 7.9 builds without NetworkManager.
if {{nm}}; then
  systemctl disable --now NetworkManager
fi
# Its wait-online unit would hold every boot for a network it no longer manages.
if {{wait}}; then
  systemctl disable NetworkManager-wait-online
fi
systemctl enable network
systemctl {{verb}} network
