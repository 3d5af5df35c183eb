# Fills in `resolved` for package-lock.json entries that lack it.
#
# npm leaves `resolved` out when `omit-lockfile-registry-resolved` is set, and importNpmLock
# needs a URL (plus the `integrity` npm always records) to fetch each package. Registry tarballs
# have a fixed layout, so the URL follows from the name and version; entries that already have
# `resolved`, links, the root package and workspace folders are left alone.
{ lib }:
{ registry }:
lock:
let
  # "node_modules/@types/ssh2/node_modules/@types/node" -> "@types/node"
  nameOf = path: module: module.name or (lib.last (lib.splitString "node_modules/" path));
  tarball =
    path: module:
    let
      name = nameOf path module;
    in
    "${lib.removeSuffix "/" registry}/${name}/-/${baseNameOf name}-${module.version}.tgz";
in
lock
// {
  packages = lib.mapAttrs (
    path: module:
    if
      !(lib.hasPrefix "node_modules/" path || lib.hasInfix "/node_modules/" path)
      || module ? resolved
      || module.link or false
      || !(module ? version)
    then
      module
    else
      module // { resolved = tarball path module; }
  ) (lock.packages or { });
}
