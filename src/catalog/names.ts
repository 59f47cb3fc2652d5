const PUNCTUATION = /[:,()[\]]/g
const LETTER_DIGIT = /(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])/g
const SPACES = /\s+/g
const SYNONYMS: Record<string, string> = {
  win: 'windows',
  ws: 'windows server',
  professional: 'pro',
  proplus: 'pro plus',
  std: 'standard',
  dc: 'datacenter',
  workstations: 'workstation',
}
const SYNONYM = /(?<= )(?:win|ws|professional|proplus|std|dc|workstations)(?= )/g

/**
 * The form names are compared in, so that what people type meets what the tables say:
 * "win11 pro" = "Windows 11 Pro", "Office Professional Plus" = "Office ProPlus", "server 2025 dc" =
 * "Windows Server 2025 Datacenter". scripts/build-catalog.mjs uses this one (from dist/) to pick
 * the aliases it keeps, so they cannot collide here; loading checks that they do not.
 */
export function canon(text: string): string {
  let s = ` ${text.toLowerCase().replace(PUNCTUATION, ' ').replace(LETTER_DIGIT, ' ')} `.replace(SPACES, ' ')
  if (s.startsWith(' microsoft ')) s = s.slice(10)
  s = s.replace(SYNONYM, (w) => SYNONYMS[w]).replace(/ for workstation /g, ' workstation ')
  if (s.startsWith(' server ')) s = ` windows${s}`
  return s.trim()
}

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const GVLK_RE = /^[0-9A-Z]{5}(-[0-9A-Z]{5}){4}$/

/** A GUID in the project's form (lower case, no braces), or undefined if it is not one. */
export function normalizeGuid(text: string): string | undefined {
  const g = text
    .trim()
    .replace(/^\{(.*)\}$/, '$1')
    .toLowerCase()
  return GUID_RE.test(g) ? g : undefined
}

export function isGuid(text: string): boolean {
  return GUID_RE.test(text)
}

/** The 5x5 form of a product key. */
export function isGvlk(text: string): boolean {
  return GVLK_RE.test(text)
}
