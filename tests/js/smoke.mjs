// Drives a strongroom server with the AWS SDK for JavaScript v3: create, get, put, list.
// Usage: node smoke.mjs ENDPOINT ACCESS_KEY_ID SECRET_ACCESS_KEY NAME
import {
  SecretsManagerClient, CreateSecretCommand, GetSecretValueCommand, PutSecretValueCommand,
  ListSecretsCommand, DescribeSecretCommand,
} from "@aws-sdk/client-secrets-manager";

const [endpoint, accessKeyId, secretAccessKey, name] = process.argv.slice(2);
const client = new SecretsManagerClient({
  endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1,
});
const out = {};
const created = await client.send(new CreateSecretCommand({ Name: name, SecretString: "from-js-1" }));
out.createdArn = created.ARN;
out.createdVersion = created.VersionId;
out.first = (await client.send(new GetSecretValueCommand({ SecretId: name }))).SecretString;
const put = await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: "from-js-2" }));
out.putStages = put.VersionStages;
out.second = (await client.send(new GetSecretValueCommand({ SecretId: name }))).SecretString;
const listed = await client.send(new ListSecretsCommand({ Filters: [{ Key: "name", Values: [name] }] }));
out.listed = listed.SecretList.map((s) => s.Name);
const described = await client.send(new DescribeSecretCommand({ SecretId: name }));
out.createdDateIsDate = described.CreatedDate instanceof Date;
try {
  await client.send(new GetSecretValueCommand({ SecretId: name + "-missing" }));
  out.missing = "no error";
} catch (err) {
  out.missing = { name: err.name, status: err.$metadata.httpStatusCode, message: err.message };
}
console.log(JSON.stringify(out));
