if ! {{installed}}; then
  {{install}}
fi
