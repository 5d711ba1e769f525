/**
 * Ready-made characters and the scene. The embedded model learned Shakespeare's plays, and its
 * chat template renders a conversation as play text, so a character is a system prompt that
 * sets a scene. Characters that open with the same scene share its KV blocks in the pool.
 */
export interface Character {
  readonly name: string;
  readonly system: string;
}

/** The common opening: long enough to fill several 16-token KV blocks, so agents share them. */
export const VERONA = 'Verona. A public place. Enter the houses of Montague and Capulet, and the Prince with his train. The citizens speak in verse of love, of feud and of the night.';

export const CHARACTERS: readonly Character[] = [
  { name: 'Romeo', system: `${VERONA} ROMEO is young and in love.` },
  { name: 'Juliet', system: `${VERONA} JULIET waits at her window.` },
  { name: 'Mercutio', system: `${VERONA} MERCUTIO jests.` },
  { name: 'Nurse', system: `${VERONA} The NURSE gossips.` },
];

export const SCENE_CAST: readonly string[] = ['ROMEO', 'JULIET', 'MERCUTIO'];

/** The scene's shared system prompt: every cast member's memory opens with it. */
export const SCENE_SYSTEM = `${VERONA} Act one, scene five: a hall in Capulet's house, a feast.`;
