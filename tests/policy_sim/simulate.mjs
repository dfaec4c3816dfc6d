// Reads a JSON array of simulations on stdin; prints the simulator's verdict for each, in order.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const input = JSON.parse(await new Promise((resolve) => {
  let data = ''
  process.stdin.on('data', (chunk) => { data += chunk })
  process.stdin.on('end', () => resolve(data))
}))
const verdicts = []
for (const simulation of input) {
  try {
    const result = await runSimulation(simulation, {})
    verdicts.push(result.errors ? { error: JSON.stringify(result.errors) } : { result: result.overallResult })
  } catch (error) {
    verdicts.push({ error: String(error) })
  }
}
process.stdout.write(JSON.stringify(verdicts))
