// The input arrives as the first argument (input_mode: argument).
const { text } = JSON.parse(process.argv[2]);
const words = text.split(/\s+/).filter(Boolean).length;
console.log(JSON.stringify({ words, chars: text.length }));
