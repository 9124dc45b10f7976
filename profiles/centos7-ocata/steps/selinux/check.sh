[ "$(getenforce)" = Disabled ] || {{installed}}
