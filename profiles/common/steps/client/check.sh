{{installed}}
