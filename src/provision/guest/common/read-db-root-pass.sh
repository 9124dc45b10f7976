pw=$(cat {{secret}}) &&
[[ $pw =~ ^[A-Za-z0-9]+$ ]]
