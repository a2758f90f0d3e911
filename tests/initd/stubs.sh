# shellcheck shell=dash
# Stand-ins for what /etc/rc.common gives an OpenWrt init script: the UCI
# readers of /lib/functions.sh and the procd_* calls of
# /lib/functions/procd.sh. Sourced by tests/initd/run before the init script.
#
# config_load reads $UCI_CONFIG_DIR/NAME the way the real one reads
# `uci export`: UCI's file syntax is shell syntax once `config`, `option`
# and `list` are functions. Values land in CONFIG_<section>_<option>, and
# config_get, config_get_bool and config_list_foreach behave as the real
# ones (the default applies to an empty value too).
#
# Every procd call appends lines to $PROCD_LOG, one value per line, so a
# test sees exactly how the command line was split into arguments:
#   open | close | set TYPE | TYPE VALUE | reload_trigger CONFIG
# logger, mkdir, chown and chmod are recorded in $SIDE_LOG instead of run.
# logread prints the canned lines of $LOGREAD_FILE (see below).

config_load() {
	CONFIG_SECTION=
	# shellcheck disable=SC1090
	. "$UCI_CONFIG_DIR/$1"
}

config() {
	CONFIG_SECTION=${2:-}
}

option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}

# As the real one: the items joined with spaces in CONFIG_<s>_<o>, and
# each kept whole in CONFIG_<s>_<o>_ITEM<n>, counted in CONFIG_<s>_<o>_LENGTH.
list() {
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\$CONFIG_${CONFIG_SECTION}_$1 }\$2\""
}

config_get() {
	if [ -n "${NO_EXPORT:-}" ]; then
		eval "$1=\${CONFIG_$2_$3:-\${4:-}}"
	else
		eval "export $1=\${CONFIG_$2_$3:-\${4:-}}"
	fi
}

config_get_bool() {
	local _raw
	config_get _raw "$2" "$3" "${4:-}"
	case $_raw in
	1 | on | true | yes | enabled) eval "$1=1" ;;
	0 | off | false | no | disabled) eval "$1=0" ;;
	*) eval "$1=\${4:-}" ;;
	esac
}

config_list_foreach() {
	local section=$1 option=$2 function=$3 len val c=1
	config_get len "$section" "${option}_LENGTH"
	[ -n "$len" ] || return 0
	while [ "$c" -le "$len" ]; do
		config_get val "$section" "${option}_ITEM$c"
		"$function" "$val"
		c=$((c + 1))
	done
}

procd_open_instance() {
	echo "open" >>"$PROCD_LOG"
}

procd_set_param() {
	local type=$1
	shift
	echo "set $type" >>"$PROCD_LOG"
	for value in "$@"; do
		echo "$type $value" >>"$PROCD_LOG"
	done
}

procd_append_param() {
	local type=$1
	shift
	for value in "$@"; do
		echo "$type $value" >>"$PROCD_LOG"
	done
}

procd_close_instance() {
	echo "close" >>"$PROCD_LOG"
}

procd_add_reload_trigger() {
	echo "reload_trigger $*" >>"$PROCD_LOG"
}

logger() {
	echo "logger $*" >>"$SIDE_LOG"
}

mkdir() {
	echo "mkdir $*" >>"$SIDE_LOG"
}

chown() {
	echo "chown $*" >>"$SIDE_LOG"
}

chmod() {
	echo "chmod $*" >>"$SIDE_LOG"
}

# As `logread -f` would print new lines: each line of $LOGREAD_FILE in
# turn, except that a line '#sleep N' waits N seconds instead (a pause
# between two uploads); then it ends, as when logd restarts. It filters
# nothing (the real -e would): the script's own matching is under test.
# Its arguments go to $SIDE_LOG.
logread() {
	local line
	echo "logread $*" >>"$SIDE_LOG"
	while IFS= read -r line; do
		case $line in
		"#sleep "*) sleep "${line#"#sleep "}" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$LOGREAD_FILE"
}
