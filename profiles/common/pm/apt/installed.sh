[ "$(dpkg-query -W -f='${Status}\n' {{packages}} 2>/dev/null | grep -cx 'install ok installed')" = {{count}} ]
