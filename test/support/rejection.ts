/** The error a promise rejects with; fails the test when it resolves instead. */
export const failure = async (p: Promise<unknown>): Promise<unknown> => {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection, but the call succeeded')
}
