# Example configurations for the module evaluation tests (tests/nix/eval.nix) and the flake's
# module-eval check (nix/tests/module-eval.nix): good ones, and one bad input per assertion.
let
  boxHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestHostKeyNotARealKeyAAAAAAAAAAAAAA box";
  controllerKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHozoTestClientKeyNotARealKeyAAAAAAAAAAAA hozo@controller";
in
{
  inherit boxHostKey controllerKey;

  controller = {
    services.prometheus.exporters.node.enable = true;
    services.hozo.controller = {
      enable = true;
      logFile = "/var/log/hozo/hozo.log";
      hosts.box = {
        address = "backupbox.lan";
        sshKeyFile = "/run/secrets/hozo/box-ssh-key";
        hostPublicKey = boxHostKey;
        wake = {
          mac = "52:54:00:7a:0b:01";
          address = "192.168.1.255";
        };
        readyTimeout = "10m";
      };
      hosts.attic = {
        address = "10.0.0.7";
        port = 2222;
        sshKeyFile = "/run/secrets/hozo/attic-ssh-key";
        knownHostsFile = "/etc/hozo/attic_known_hosts";
        shutdown = "none";
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
    services.hozo.agent = {
      enable = true;
      authorizedKeys = [ controllerKey ];
      allowedFrom = [ "192.168.1.10" ];
      roots = [
        "backup/hozo"
        "vault/hozo/main"
      ];
      retention = {
        daily = 10;
        weekly = 5;
        monthly = 12;
      };
      idlePoweroffMinutes = 20;
      wakeOnLan.interfaces = [
        "enp3s0"
        "lan-uplink"
      ];
    };
  };

  agentBad = {
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
  };
}
