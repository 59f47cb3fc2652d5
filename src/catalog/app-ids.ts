// The application ids (§6.2) the house has rules for: Windows' threshold and the counter's pools
// that are never evicted. Every other id is plain catalogue data.
export const WINDOWS_APP_ID = '55c92734-d682-4d71-983e-d6ec3f16059f'
export const OFFICE2010_APP_ID = '59a52881-a989-479d-af46-f275c6370663'
export const OFFICE2013_APP_ID = '0ff1ce15-a989-479d-af46-f275c6370663'
