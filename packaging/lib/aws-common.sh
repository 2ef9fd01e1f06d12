# shellcheck shell=sh
# aws-common.sh: what the AWS [[vip]] hooks of mcast-relay share, sourced
# by each (not a hook itself): the one-line failure, the instance
# metadata service (IMDSv2), this host's ENI and the aws CLI call with
# the endpoint, region and timeouts. The sourcing hook sets `me`.

# shellcheck disable=SC2154 # `me` is the sourcing hook's name
fail() {
    printf '%s: %s\n' "$me" "$*" >&2
    exit 1
}

# The last non-empty line of what a command said on stderr: the aws CLI
# puts a blank line before its one-line error.
last_line() {
    printf '%s\n' "$1" | sed '/^[[:space:]]*$/d' | tail -n 1
}

imds_base=${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}
imds_token=
imds() {
    if [ -z "$imds_token" ]; then
        imds_token=$(curl -fsS --connect-timeout 1 --max-time 3 -X PUT \
            -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' \
            "$imds_base/latest/api/token" 2>&1) ||
            fail "no AWS_ENI_ID set and the instance metadata service did not answer: $(last_line "$imds_token")"
    fi
    out=$(curl -fsS --connect-timeout 1 --max-time 3 \
        -H "X-aws-ec2-metadata-token: $imds_token" \
        "$imds_base/latest/meta-data/$1" 2>&1) ||
        fail "instance metadata $1: $(last_line "$out")"
    printf '%s\n' "$out"
}

eni() {
    if [ -n "${AWS_ENI_ID:-}" ]; then
        printf '%s\n' "$AWS_ENI_ID"
        return
    fi
    mac=$(imds mac)
    imds "network/interfaces/macs/$mac/interface-id"
}

# Runs `aws ec2 "$@"` with the endpoint and region and passes on what it
# prints; a failure ends the hook with the CLI's own error line.
ec2_out() {
    op=$1
    set -- ec2 "$@"
    if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
        set -- --endpoint-url "$AWS_ENDPOINT_URL" "$@"
    fi
    if [ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ]; then
        region=$(imds placement/region)
        set -- --region "$region" "$@"
    fi
    # stderr into $err, stdout on through descriptor 3.
    if ! { err=$(aws --cli-connect-timeout 5 --cli-read-timeout 10 "$@" 2>&1 1>&3 3>&-); } 3>&1; then
        fail "$op failed: $(last_line "${err:-aws exited non-zero}")"
    fi
}

# The same, its output dropped.
ec2() {
    ec2_out "$@" >/dev/null
}

# The relay retries a failed hook with its own backoff: one CLI retry is
# enough; the pager is never wanted.
: "${AWS_MAX_ATTEMPTS:=2}"
export AWS_MAX_ATTEMPTS
AWS_PAGER=
export AWS_PAGER
