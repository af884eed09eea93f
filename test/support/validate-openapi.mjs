// Validates the OpenAPI document on stdin and prints the validator's verdict as JSON.
// A plain Node process, because the validator is ESM-only and jest's CommonJS transform can't load it.
import { Validator } from '@seriousme/openapi-schema-validator';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const validator = new Validator();
const result = await validator.validate(JSON.parse(input));
process.stdout.write(JSON.stringify({ ...result, version: validator.version }));
