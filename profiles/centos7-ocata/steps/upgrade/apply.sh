yum upgrade -y
