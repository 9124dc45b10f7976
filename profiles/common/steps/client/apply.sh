{{install}}
