# The hozo package: both binaries (hozo, hozo-agent) built from this repository with
# buildNpmPackage. Dependencies come from package-lock.json through importNpmLock, so there is no
# dependency hash to keep up to date.
{
  lib,
  buildNpmPackage,
  importNpmLock,
  nodejs,
  makeWrapper,
  openssh,
  mbuffer,
  pv,
  zstd,
  # Base URL for lock entries without `resolved` (see ./npm-lock.nix).
  npmRegistry ? "https://registry.npmjs.org",
}:

let
  packageJson = lib.importJSON ../package.json;
  # npm writes no `resolved` when omit-lockfile-registry-resolved is set; importNpmLock needs one.
  packageLock = import ./npm-lock.nix { inherit lib; } { registry = npmRegistry; } (
    lib.importJSON ../package-lock.json
  );

  # What `npm run build` (tsc -p tsconfig.json) reads; nothing else enters the build.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../src
      (lib.fileset.maybeMissing ../agent)
    ];
  };

  # The wrapper supplies the transport and stream tools; the ZFS userland comes from the
  # service's PATH (config.boot.zfs.package), so it always matches the loaded kernel module.
  runtimePath = lib.makeBinPath [
    openssh
    mbuffer
    pv
    zstd
  ];
in
buildNpmPackage {
  pname = packageJson.name;
  inherit (packageJson) version;
  inherit src nodejs;

  npmDeps = importNpmLock {
    npmRoot = ../.;
    package = packageJson;
    inherit packageLock;
  };
  npmConfigHook = importNpmLock.npmConfigHook;

  nativeBuildInputs = [ makeWrapper ];

  postInstall = ''
    pkgdir=$out/lib/node_modules/${packageJson.name}
    for entry in dist/src/cli/main.js dist/agent/main.js; do
      if [ ! -f "$pkgdir/$entry" ]; then
        echo "hozo: $entry is missing after 'npm run build'" >&2
        exit 1
      fi
    done
    # package.json's "bin" provides hozo; hozo-agent is added here while it is not listed there.
    if [ ! -e $out/bin/hozo-agent ]; then
      makeWrapper ${lib.getExe nodejs} $out/bin/hozo-agent --add-flags "$pkgdir/dist/agent/main.js"
    fi
    for prog in hozo hozo-agent; do
      wrapProgram $out/bin/$prog --prefix PATH : ${runtimePath}
    done
  '';

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    $out/bin/hozo --help >/dev/null
    ${lib.getExe nodejs} --check $out/lib/node_modules/${packageJson.name}/dist/agent/main.js
    runHook postInstallCheck
  '';

  passthru = { inherit packageLock; };

  meta = {
    description = "Off-site ZFS replication to a sleeping backup box: wake, replicate, verify, shut down";
    license = lib.licenses.mit;
    mainProgram = "hozo";
    platforms = lib.platforms.linux;
  };
}
