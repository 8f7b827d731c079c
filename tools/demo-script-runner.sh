#!/usr/bin/env bash
# The command of the bash task that tools/demo (part 2) sends to
# `credbroker runner` through the mock agent platform. The task carries a
# credential; the runner keeps the key in a broker and gives this command only
# fd 3. Its output is read by tools/demo from the task.result, so it prints
# plain, line-oriented facts:
#
#   flashduty_vars: <names of the FLASHDUTY_* variables here>
#   app_key_count: <what `env | grep -c FLASHDUTY_APP_KEY` printed>
#   channel_list: <the body of `credfd POST /channel/list -d '{}'`>
#
# and exits with credfd's status (-f: an HTTP error is exit 22).
set -uo pipefail

echo "flashduty_vars: $(env | grep -o '^FLASHDUTY_[A-Z_]*' | sort | tr '\n' ' ')"
echo "app_key_count: $(env | grep -c FLASHDUTY_APP_KEY || true)"
body=$(credfd -f POST /channel/list -d '{}')
rc=$?
echo "channel_list: $body"
exit "$rc"
