// Reads one JSON object on stdin and prints one JSON object on stdout.
let data = "";
for await (const chunk of process.stdin) data += chunk;
const { text } = JSON.parse(data);
process.stdout.write(`${JSON.stringify({ text: text.toUpperCase(), length: text.length })}\n`);
