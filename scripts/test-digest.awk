# One line per failed test: its name, where it panicked and the first lines
# of the panic message, so the tail of a long log says why, not only which.
function flush() {
  if (name != "" && loc != "") print "  " name " (" loc "): " msg
  name = ""; loc = ""; msg = ""; want = 0
}
/^---- .* stdout ----$/ { flush(); name = $2; next }
name != "" && loc == "" && /panicked at / {
  loc = $0; sub(/.*panicked at /, "", loc); sub(/:$/, "", loc); want = 6; next
}
name != "" && want > 0 {
  if ($0 == "" || $0 ~ /^(stack backtrace:|note: )/) { flush(); next }
  msg = msg (msg == "" ? "" : " | ") substr($0, 1, 160); want--
  if (want == 0) flush()
}
/^failures:$/ { flush() }
END { flush() }
