// The one shell-quoting function of the code base. Used only where a remote shell must parse a command line
// (ssh joins its argv into a string for the remote user's shell); everything else passes argv arrays.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (arg.length > 0 && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
