"""basic_calculator: one JSON object in on stdin, one JSON object out on stdout."""
import json
import sys


def main() -> int:
    data = json.load(sys.stdin)
    a, b, op = data["a"], data["b"], data["operation"]
    if op == "add":
        result = a + b
    elif op == "subtract":
        result = a - b
    elif op == "multiply":
        result = a * b
    elif op == "divide":
        if b == 0:
            print("division by zero", file=sys.stderr)
            return 1
        result = a / b
    else:
        print(f"unknown operation {op!r}", file=sys.stderr)
        return 2
    json.dump({"result": result, "operation": op}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
