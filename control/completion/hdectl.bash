# bash completion for hdectl: options, then the gateway's own command names
# (asked from the running gateway with `hdectl list-commands`).
#   source control/completion/hdectl.bash
_hdectl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  case "$prev" in
    -s|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
    --watch) return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "-s --socket --format --watch --help" -- "$cur"))
    return
  fi
  # Words typed so far after the options, and the socket if one was given.
  local sock=() words=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in
      -s|--socket) sock=(-s "${COMP_WORDS[i+1]}"); ((i++)) ;;
      --format|--watch) ((i++)) ;;
      *) words+=("${COMP_WORDS[i]}") ;;
    esac
  done
  local cmds
  cmds=$(hdectl "${sock[@]}" --format json list-commands 2>/dev/null |
         python3 -c 'import json,sys; [print(c["command"]) for c in json.load(sys.stdin)]' 2>/dev/null)
  [ -n "$cmds" ] || cmds=$'show stats\nshow lcores\nshow ports\nshow codecs\nshow baselines\nshow migrations\nshow config\nshow selector\nselector export\nselector import\nshow crypto\nkey rotate\nset mode\nset codec\nset link-rate\nset cache-mb\nset idle-sleep\nbaselines lookup\nbaselines flush\nstats reset\nshutdown\nshow peers\nshow fleet\nshow sync\npeers add\npeers remove\npeers block\npeers unblock\nlist-commands\nhelp\nversion'
  local typed="${words[*]}" next=()
  while IFS= read -r c; do
    if [[ -z $typed ]]; then
      next+=("${c%% *}")
    elif [[ "$c " == "$typed "* ]]; then
      local rest=${c#"$typed "}
      [[ $rest != "$c" && -n $rest ]] && next+=("${rest%% *}")
    fi
  done <<<"$cmds"
  case "$typed" in
    "set mode") next=(datacenter internet hybrid) ;;
    "set codec") next=(lz4 lz4:4 zstd:1 zstd:3 zstd:9 igzip:1 raw) ;;
  esac
  COMPREPLY=($(compgen -W "$(printf '%s\n' "${next[@]}" | sort -u)" -- "$cur"))
}
complete -F _hdectl hdectl
