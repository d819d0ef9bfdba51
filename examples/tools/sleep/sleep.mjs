// Sleeps `seconds`, then prints {"slept": seconds}.
let data = "";
for await (const chunk of process.stdin) data += chunk;
const { seconds } = JSON.parse(data);
setTimeout(() => console.log(JSON.stringify({ slept: seconds })), seconds * 1000);
