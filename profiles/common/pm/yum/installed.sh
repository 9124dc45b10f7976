rpm -q --whatprovides {{packages}} >/dev/null
