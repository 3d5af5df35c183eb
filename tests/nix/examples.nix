# Example configurations for the module evaluation tests (tests/nix/eval.nix) and the flake's
# module-eval check (nix/tests/module-eval.nix): good ones, and one bad input per assertion.
let
  boxHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestHostKeyNotARealKeyAAAAAAAAAAAAAA box";
  controllerKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestClientKeyNotARealKeyAAAAAAAAAAAA hozo@controller";
  relayHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestRelayKeyNotARealKeyAAAAAAAAAAAAA relay";
  farHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestFarawayKeyNotARealKeyAAAAAAAAAAA faraway";
  storePath = "/nix/store/8a3n5bnpq1dd7mvkr0g1j9bnbaxs0qc1";
in
{
  inherit boxHostKey controllerKey;

  controller = {
    boot.supportedFilesystems = [ "zfs" ];
    services.prometheus.exporters.node.enable = true;
    services.hozo.controller = {
      enable = true;
      logFile = "/var/log/hozo/hozo.log";
      # Reported to ntfy (token from a secret file), pushover and by mail.
      notify = [
        {
          type = "ntfy";
          url = "https://ntfy.sh/hozo-test-3f9c";
          tokenFile = "/run/secrets/hozo/ntfy-token";
        }
        {
          type = "pushover";
          userFile = "/run/secrets/hozo/pushover-user";
          tokenFile = "/run/secrets/hozo/pushover-token";
          timeout = "30s";
        }
        {
          type = "email";
          to = [ "admin@example.org" ];
          from = "hozo@controller.lan";
          on = "always";
        }
      ];
      # The recommended setup: a box running services.hozo.agent, woken by magic packet.
      hosts.box = {
        address = "backupbox.lan";
        sshKeyFile = "/run/secrets/hozo/box-ssh-key";
        hostPublicKey = boxHostKey;
        wake = {
          mac = "52:54:00:7a:0b:01";
          address = "192.168.1.255";
        };
        readyTimeout = "10m";
        pools = [ "backup" ];
        leaseTtl = "8h";
      };
      # A plain SSH box behind a smart plug, powered off with a command.
      hosts.attic = {
        address = "10.0.0.7";
        port = 2222;
        sshKeyFile = "/run/secrets/hozo/attic-ssh-key";
        knownHostsFile = "/etc/hozo/attic_known_hosts";
        shutdown = "ssh";
        shutdownCommand = [
          "sudo"
          "poweroff" # evaluated only, never run
        ];
        wake = {
          method = "http";
          url = "http://plug.lan/relay/0?turn=on";
          httpMethod = "GET";
        };
      };
      # A box at another site, woken by an always-on relay there.
      hosts.relay = {
        address = "relay.example.net";
        sshKeyFile = "/run/secrets/hozo/relay-ssh-key";
        hostPublicKey = relayHostKey;
        shutdown = "none";
        agent = false;
      };
      hosts.faraway = {
        address = "faraway.example.net";
        sshKeyFile = "/run/secrets/hozo/faraway-ssh-key";
        hostPublicKey = farHostKey;
        wake = {
          method = "ssh-relay";
          relayHost = "relay";
          mac = "52:54:00:7a:0b:02";
          address = "10.20.0.255";
          packets = 5;
        };
        shutdownIfAwake = true;
        bandwidthLimit = "20M"; # the far site's uplink
        scrubWarnAfter = "40d";
      };
      jobs.offsite = {
        host = "box";
        schedule = "*-*-* 02:30:00";
        datasets = [
          {
            source = "tank/home";
            target = "backup/hozo/home";
            recursive = true;
            exclude = [ "tank/home/cache" ];
          }
          {
            source = "tank/db";
            target = "backup/hozo/db";
          }
        ];
        snapshots.policy = {
          hourly = 24;
          daily = 14;
          monthly = 6;
        };
        compress = "zstd";
        buffer = "auto";
      };
      jobs.weekly = {
        host = "attic";
        schedule = "Sun 04:00";
        snapshots.send = "latest";
        datasets = [
          {
            source = "tank/db";
            target = "vault/db";
          }
        ];
        shutdownAfter = false;
        retryDelay = "5m";
        bandwidthLimit = "5M";
        # Two definitions (lib.mkMerge, spelled out: this file has no lib): both reach the unit.
        service = {
          _type = "merge";
          contents = [
            { serviceConfig.Nice = 10; }
            { serviceConfig.IOSchedulingClass = "idle"; }
          ];
        };
      };
      jobs.far = {
        host = "faraway";
        schedule = "Sat 03:00";
        # Own snapshots with a database hook around them (docs/snapshots.md).
        snapshots.own = {
          enable = true;
          keep = 10;
        };
        hooks.postRun.command = [
          "/run/current-system/sw/bin/logger"
          "hozo far done"
        ];
        verify = {
          schedule = "monthly";
          files = 500;
        };
        window.maxAwake = "2h";
        datasets = [
          {
            source = "tank/db";
            target = "offsite/hozo/db";
            hooks.preSnapshot = {
              command = [
                "/run/current-system/sw/bin/psql"
                "-c"
                "CHECKPOINT"
              ];
              timeout = "5m";
            };
          }
        ];
      };
      jobs.local-copy = {
        host = "local";
        datasets = [
          {
            source = "tank/photos";
            target = "archive/photos";
          }
        ];
      };
      # The escape hatch: merged over the generated config (lists replace).
      settings.hosts.box.sshOptions = [ "Ciphers=aes128-gcm@openssh.com" ];
    };
  };

  controllerMinimal = {
    boot.supportedFilesystems = [ "zfs" ];
    services.hozo.controller = {
      enable = true;
      user = "root";
      hosts.box = {
        address = "box";
        hostPublicKey = boxHostKey;
      };
      jobs.nightly = {
        host = "box";
        datasets = [
          {
            source = "rpool/data";
            target = "backup/data";
          }
        ];
      };
    };
  };

  controllerBad = {
    noZfs =
      { lib, ... }:
      {
        boot.supportedFilesystems.zfs = lib.mkForce false;
      };
    unknownHost = {
      services.hozo.controller.jobs.stray = {
        host = "nowhere";
        datasets = [
          {
            source = "tank/x";
            target = "backup/x";
          }
        ];
      };
    };
    emptySchedule =
      { lib, ... }:
      {
        services.hozo.controller.jobs.offsite.schedule = lib.mkForce " ";
      };
    emptyDatasets = {
      services.hozo.controller.jobs.hollow.host = "box";
    };
    duplicateTargets = {
      services.hozo.controller.jobs.again = {
        host = "box";
        datasets = [
          {
            source = "tank/other";
            target = "backup/hozo/home";
          }
        ];
      };
    };
    keyInStore =
      { lib, ... }:
      {
        services.hozo.controller.hosts.box.sshKeyFile = lib.mkForce "/nix/store/8a3n5bnpq1dd7mvkr0g1j9bnbaxs0qc1-box-key";
      };
    keyInStoreViaSettings = {
      services.hozo.controller.settings.hosts.extra = {
        address = "extra.lan";
        sshKeyFile = "/nix/store/8a3n5bnpq1dd7mvkr0g1j9bnbaxs0qc1-extra-key";
      };
    };
    noHostKey = {
      services.hozo.controller.hosts.bare.address = "bare.lan";
    };
    sharedLogDirectory =
      { lib, ... }:
      {
        services.hozo.controller.logFile = lib.mkForce "/var/log/hozo.log";
      };
    wolWithoutAddress =
      { lib, ... }:
      {
        services.hozo.controller.hosts.box.wake.address = lib.mkForce null;
      };
    wolLimitedBroadcast =
      { lib, ... }:
      {
        # The limited broadcast, built from its parts (no test spells an address it could send to); the assertion
        # must reject it.
        services.hozo.controller.hosts.box.wake.address = lib.mkForce (lib.concatStringsSep "." (lib.replicate 4 "255"));
      };
    relayUnknown =
      { lib, ... }:
      {
        services.hozo.controller.hosts.faraway.wake.relayHost = lib.mkForce "nowhere";
      };
    httpWithoutUrl =
      { lib, ... }:
      {
        services.hozo.controller.hosts.attic.wake.url = lib.mkForce null;
      };
    notifyWithoutUrl = {
      services.hozo.controller.notify = [ { type = "webhook"; } ];
    };
    notifyForeignField = {
      services.hozo.controller.notify = [
        {
          type = "email";
          to = "admin@example.org";
          url = "https://example.org/hook";
        }
      ];
    };
    notifySecretInStore = {
      services.hozo.controller.notify = [
        {
          type = "webhook";
          url = "https://example.org/hook";
          tokenFile = "${storePath}-webhook-token";
        }
      ];
    };
    notifySecretInStoreViaSettings = {
      services.hozo.controller.settings.notify = [
        {
          type = "pushover";
          userFile = "/run/secrets/hozo/pushover-user";
          tokenFile = "${storePath}-pushover-token";
        }
      ];
    };
    jobUnitCollision = {
      services.hozo.controller.jobs."zfs-delegation" = {
        host = "box";
        datasets = [
          {
            source = "tank/z";
            target = "backup/z";
          }
        ];
      };
    };
    badJobName = {
      services.hozo.controller.jobs."nightly backup" = {
        host = "box";
        datasets = [
          {
            source = "tank/y";
            target = "backup/y";
          }
        ];
      };
    };
  };

  agent = {
    boot.supportedFilesystems = [ "zfs" ];
    services.hozo.agent = {
      enable = true;
      # Scrubs carried across power cycles (docs/agent.md).
      scrub.enable = true;
      authorizedKeys = [ controllerKey ];
      allowedFrom = [ "192.168.1.10" ];
      roots = [
        "backup/hozo"
        "vault/hozo/main"
      ];
      retention = {
        hourly = 24;
        daily = 10;
        weekly = 5;
        monthly = 12;
        yearly = 3;
      };
      idlePoweroffMinutes = 20;
      wakeOnLan.interfaces = [
        "enp3s0"
        "lan-uplink"
      ];
      allowRollback = true;
      prepareTimeoutSeconds = 120;
      pruneSchedule = "*-*-* 05:00:00";
      logFile = "/var/log/hozo-agent/agent.log";
      settings.importDirectories = [ "/dev/disk/by-id" ];
    };
    # vault also holds a file system NixOS mounts: hozo-poweroff must not export it.
    fileSystems."/srv/vault" = {
      device = "vault/srv";
      fsType = "zfs";
    };
  };

  # Only what is required: every default of the module.
  agentMinimal = {
    boot.supportedFilesystems = [ "zfs" ];
    services.openssh.enable = true;
    services.hozo.agent = {
      enable = true;
      authorizedKeys = [ controllerKey ];
      roots = [ "backup/hozo" ];
    };
  };

  agentBad = {
    noZfs =
      { lib, ... }:
      {
        boot.supportedFilesystems.zfs = lib.mkForce false;
      };
    noRoots =
      { lib, ... }:
      {
        services.hozo.agent.roots = lib.mkForce [ ];
      };
    noKeys =
      { lib, ... }:
      {
        services.hozo.agent.authorizedKeys = lib.mkForce [ ];
      };
    keyWithOptions = {
      services.hozo.agent.authorizedKeys = [ ''command="/bin/sh" ${controllerKey}'' ];
    };
    sshdOff =
      { lib, ... }:
      {
        services.openssh.enable = lib.mkForce false;
      };
    badRoot = {
      services.hozo.agent.roots = [ "/backup/hozo" ];
    };
    sharedLogDirectory =
      { lib, ... }:
      {
        services.hozo.agent.logFile = lib.mkForce "/var/log/hozo-agent.log";
      };
    relativeStateDirectory = {
      services.hozo.agent.stateDirectory = "var/lib/hozo-agent";
    };
  };
}
