// hozo's version: printed by --version and carried in reports; kept equal to package.json's by a test.
export const VERSION = '0.1.0';
