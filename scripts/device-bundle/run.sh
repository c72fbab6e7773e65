#!/bin/sh
# SDTT Workbench device benchmark kit: runs sdtt bench train|sample on onnxruntime's WebGPU EP and its CPU EP, for
# bench-5m and a 42 M-parameter model, on random weights. One JSON line per benchmark on stdout; progress on stderr.
# Needs only Linux x86-64 (glibc >= 2.28, libstdc++), xz (for the first run) and, for webgpu, a Vulkan driver.
# Knobs (environment): BENCH_STEPS BACKENDS MODELS BENCHES THREADS SAMPLE_STEPS SAMPLE_BATCH BENCH_TIMEOUT WORK_DIR
# (see README.txt).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_STEPS="${BENCH_STEPS:-8}"
BACKENDS="${BACKENDS:-webgpu onnx-cpu}"
MODELS="${MODELS:-bench-5m bench-42m}"
BENCHES="${BENCHES-train sample}"
THREADS="${THREADS:-$(nproc 2>/dev/null || echo 2)}"
SAMPLE_STEPS="${SAMPLE_STEPS:-128,64,32,16,8,4}"
SAMPLE_BATCH="${SAMPLE_BATCH:-16}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-1800}"
BUNDLE_ID=$(sed -n 's/.*"bundle_id": *"\([^"]*\)".*/\1/p' "$HERE/bundle.json")

say() { printf 'run.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) die "this kit is for Linux x86-64; this machine is $(uname -s) $(uname -m)" ;;
esac

# ---- unpack node and libonnxruntime (once) -------------------------------------------------------------------
pick_work() {
  if [ -n "${WORK_DIR:-}" ]; then echo "$WORK_DIR"; return; fi
  if mkdir -p "$HERE/.work" 2>/dev/null && [ -w "$HERE/.work" ]; then echo "$HERE/.work"; return; fi
  echo "${TMPDIR:-/tmp}/sdtt-device-kit-$(id -u)-$BUNDLE_ID"
}
WORK=$(pick_work)
mkdir -p "$WORK" || die "cannot create the work folder $WORK (set WORK_DIR=...)"

unpack() { # unpack SRC.xz DEST
  [ -f "$1" ] || return 0
  command -v xz >/dev/null 2>&1 ||
    die "xz is not installed: it unpacks node and onnxruntime on the first run (Debian/Ubuntu: apt-get install xz-utils; Fedora/RHEL: dnf install xz; Arch: pacman -S xz). Or run BENCHES= ./run.sh (unpack only) on a machine with xz and copy the folder with its .work/"
  mkdir -p "$(dirname "$2")"
  xz -dc "$1" > "$2.tmp.$$" || die "unpacking $1 failed (disk full?)"
  mv -f "$2.tmp.$$" "$2"
}
if [ "$(cat "$WORK/unpacked" 2>/dev/null || true)" != "$BUNDLE_ID" ]; then
  say "unpacking node and onnxruntime into $WORK (once) ..."
  rm -f "$WORK/unpacked"
  unpack "$HERE/bin/node.xz" "$WORK/bin/node"
  chmod 755 "$WORK/bin/node"
  unpack "$HERE/lib/libonnxruntime.so.1.xz" "$WORK/lib/libonnxruntime.so.1"
  unpack "$HERE/lib/libvulkan.so.1.xz" "$WORK/vulkan/libvulkan.so.1"
  echo "$BUNDLE_ID" > "$WORK/unpacked"
fi
NODE="$WORK/bin/node"
err=$("$NODE" -e 0 2>&1) ||
  die "cannot run $NODE ($err): is $WORK on a noexec mount (set WORK_DIR=... elsewhere), or glibc older than 2.28?"

# onnxruntime's binding finds libonnxruntime.so.1 here. The shipped Vulkan loader only where the machine has none.
LD_LIBRARY_PATH="$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
has_vulkan_loader() {
  for d in $(echo "${LD_LIBRARY_PATH:-}" | tr ':' ' ') /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib64 /lib64 /usr/lib /lib /usr/local/lib; do
    [ -e "$d/libvulkan.so.1" ] && return 0
  done
  return 1
}
if ! has_vulkan_loader && [ -f "$WORK/vulkan/libvulkan.so.1" ]; then
  say "no Vulkan loader (libvulkan.so.1) on this machine: using the kit's"
  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$WORK/vulkan"
fi
export LD_LIBRARY_PATH
unset NODE_OPTIONS NODE_PATH 2>/dev/null || true

# ---- models ------------------------------------------------------------------------------------------------------
mkdir -p "$WORK/models" "$WORK/logs"
model_flag() { # model_flag NAME: sets FLAG and VALUE, the sdtt option naming the model (paths may hold spaces)
  FLAG=--config
  case "$1" in
    bench-5m) FLAG=--model VALUE=bench-5m ;;
    bench-42m) # 42,029,569 parameters
      VALUE="$WORK/models/bench-42m.json"
      printf '{"dModel":512,"nLayers":12,"nHeads":8,"mlpRatio":4,"seqLen":256,"vocabSize":4097}\n' > "$VALUE" ;;
    tiny) # 133,313 parameters: a smoke test (software Vulkan drivers)
      VALUE="$WORK/models/tiny.json"
      printf '{"dModel":64,"nLayers":2,"nHeads":2,"mlpRatio":4,"seqLen":32,"vocabSize":257}\n' > "$VALUE" ;;
    *.json)
      [ -f "$1" ] || return 1
      VALUE="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;;
    *) return 1 ;;
  esac
}

# ---- benchmarks --------------------------------------------------------------------------------------------------
# GNU timeout in the foreground (so Ctrl-C still reaches the benchmark); none where it is missing.
TIMEOUT=""
if [ "$BENCH_TIMEOUT" != 0 ] && timeout --foreground 5 true 2>/dev/null; then
  TIMEOUT="timeout --foreground $BENCH_TIMEOUT"
fi
now_ms() { "$NODE" -p 'Date.now()'; }
total=0
failed=0
for model in $MODELS; do
  for backend in $BACKENDS; do
    for bench in $BENCHES; do
      total=$((total + 1))
      tag="$bench-$(basename "$model" .json)-$backend"
      out="$WORK/logs/$tag.out"
      log="$WORK/logs/$tag.log"
      rcf="$WORK/logs/$tag.rc"
      : > "$out"
      : > "$log"
      echo 1 > "$rcf"
      say "---- $bench | $model | $backend"
      t0=$(now_ms)
      if model_flag "$model"; then
        case "$bench" in
          train) set -- --bench-steps "$BENCH_STEPS" --threads "$THREADS" ;;
          sample) set -- --steps "$SAMPLE_STEPS" --batch "$SAMPLE_BATCH" ;;
          *) set -- ;;
        esac
        # stdout -> $out; stderr -> the terminal and $log; the exit code -> $rcf (no pipefail in POSIX sh).
        { {
          rc=0
          $TIMEOUT "$NODE" "$HERE/app/sdtt.mjs" bench "$bench" "$FLAG" "$VALUE" --backend "$backend" "$@" 2>&1 1>&3 ||
            rc=$?
          echo "$rc" > "$rcf"
        } | tee "$log" >&2; } 3>"$out"
      else
        echo "unknown model '$model' (bench-5m, bench-42m, tiny or a model-config .json file)" | tee "$log" >&2
      fi
      t1=$(now_ms)
      if ! BENCH_TIMEOUT="$BENCH_TIMEOUT" "$NODE" "$HERE/app/result-line.mjs" "$bench" "$model" "$backend" "$(cat "$rcf")" "$t0" "$t1" "$out" "$log"; then
        failed=$((failed + 1))
      fi
    done
  done
done
if [ "$failed" -gt 0 ]; then
  say "$failed of $total benchmarks failed (their JSON lines have an \"error\"; logs in $WORK/logs)"
  exit 1
fi
say "all $total benchmarks ran (logs in $WORK/logs)"
