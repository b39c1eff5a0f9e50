// A sleep that a stop() can cut short, so retry loops (watches, leader election) end at once.
export class Sleeper {
  private wakeUp?: () => void;

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  wake(): void {
    this.wakeUp?.();
  }
}
