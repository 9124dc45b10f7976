! systemctl is-enabled --quiet NetworkManager &&
! systemctl is-active --quiet NetworkManager &&
! systemctl is-enabled --quiet NetworkManager-wait-online &&
systemctl is-enabled --quiet network &&
[ -z "$(grep -L -x NM_CONTROLLED=no {{ifcfg}} | grep -v '/ifcfg-lo$')" ]
