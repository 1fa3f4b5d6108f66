#!/usr/bin/env bash
# test_install.sh BUILD_DIR: installs that build into a temporary prefix and
# checks what C users get: the files, the soname, and a small program (built
# outside the tree) that builds and runs an engine, linked through
# find_package(Kiln) (shared and static) and through pkg-config, the latter
# again after moving the prefix (kiln.pc is relocatable).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
root=$(pwd)
model=$root/examples/tiny_cnn.onnx
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$tmp/out.txt" 2>&1; then
        pass=$((pass + 1))
        echo "PASS $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name"
        tail -n 20 "$tmp/out.txt"
    fi
}
version=$(sed -n 's/^#define KILN_VERSION_STRING "\(.*\)"/\1/p' include/kiln.h)
major_minor=${version%.*}

check install cmake --install "$build" --prefix "$tmp/prefix"
lib=$(dirname "$(find "$tmp/prefix" -name libkiln.a | head -n 1)")
check files test -f "$tmp/prefix/include/kiln.h" -a -x "$tmp/prefix/bin/kiln" \
    -a -f "$lib/libkiln.a" -a -f "$lib/libkiln.so.$version" -a -L "$lib/libkiln.so" \
    -a -f "$lib/cmake/Kiln/KilnConfig.cmake" -a -f "$lib/pkgconfig/kiln.pc"
check soname bash -c "objdump -p '$lib/libkiln.so.$version' | grep -q 'SONAME *libkiln.so.$major_minor\$'"
check cli bash -c "'$tmp/prefix/bin/kiln' version | grep -q '$version'"
check find_package_configure cmake -S tests/install/consumer -B "$tmp/consumer" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_TYPE=Release
check find_package_build cmake --build "$tmp/consumer"
check find_package_shared_run "$tmp/consumer/consumer_shared" "$model"
check find_package_static_run "$tmp/consumer/consumer_static" "$model"
# The shared program must really use the installed libkiln.so.
check find_package_shared_links bash -c "ldd '$tmp/consumer/consumer_shared' | grep -q '$tmp/prefix'"
export PKG_CONFIG_PATH=$lib/pkgconfig
check pkg_config_version bash -c "[ \"\$(pkg-config --modversion kiln)\" = '$version' ]"
check pkg_config_build bash -c "cc -std=c11 tests/install/consumer/main.c \
    \$(pkg-config --cflags --libs kiln) -Wl,-rpath,'$lib' -o '$tmp/pc_consumer'"
check pkg_config_run "$tmp/pc_consumer" "$model"
# A moved prefix still works: kiln.pc finds itself through ${pcfiledir}.
mv "$tmp/prefix" "$tmp/moved"
lib=${lib/$tmp\/prefix/$tmp/moved}
export PKG_CONFIG_PATH=$lib/pkgconfig
check pkg_config_relocated bash -c "cc -std=c11 tests/install/consumer/main.c \
    \$(pkg-config --cflags --libs kiln) -Wl,-rpath,'$lib' -o '$tmp/pc_moved' && '$tmp/pc_moved' '$model'"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
