       IDENTIFICATION DIVISION.
       PROGRAM-ID. ERRCONF.
      * File errors as the program sees them: USE procedures for one
      * file and for a mode, FILE STATUS, and a file with neither.
       ENVIRONMENT DIVISION.
       INPUT-OUTPUT SECTION.
       FILE-CONTROL.
           SELECT IDX ASSIGN TO "ERRIDX"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY IDX-KEY FILE STATUS FS.
           SELECT REL ASSIGN TO "ERRREL"
               ORGANIZATION RELATIVE ACCESS DYNAMIC
               RELATIVE KEY RK FILE STATUS FS2.
           SELECT NOFS ASSIGN TO "ERRNOFS"
               ORGANIZATION INDEXED ACCESS DYNAMIC
               RECORD KEY NOFS-KEY.
       DATA DIVISION.
       FILE SECTION.
       FD IDX.
       01 IDX-REC.
          05 IDX-KEY   PIC X(4).
          05 IDX-DATA  PIC X(6).
       FD REL.
       01 REL-REC      PIC X(10).
       FD NOFS.
       01 NOFS-REC.
          05 NOFS-KEY  PIC X(4).
          05 NOFS-DATA PIC X(4).
       WORKING-STORAGE SECTION.
       01 FS           PIC XX.
       01 FS2          PIC XX.
       01 RK           PIC 9(4).
       PROCEDURE DIVISION.
       DECLARATIVES.
       IDX-ERROR SECTION.
           USE AFTER STANDARD ERROR PROCEDURE ON IDX.
       IDX-ERROR-SHOW.
           DISPLAY "use idx " FS.
       IO-ERROR SECTION.
           USE AFTER STANDARD ERROR PROCEDURE ON I-O.
       IO-ERROR-SHOW.
           DISPLAY "use i-o " FS2 " " RK.
       END DECLARATIVES.
       MAIN SECTION.
       MAIN-PARA.
           OPEN INPUT IDX
           DISPLAY "open missing " FS
           OPEN OUTPUT IDX
           MOVE "A001" TO IDX-KEY MOVE "FIRST" TO IDX-DATA
           WRITE IDX-REC
           WRITE IDX-REC
           DISPLAY "write twice " FS
           CLOSE IDX
           OPEN I-O IDX
           MOVE "Z999" TO IDX-KEY
           READ IDX
           DISPLAY "read missing " FS
           READ IDX NEXT
           READ IDX NEXT
           DISPLAY "read past end " FS
           CLOSE IDX
           CLOSE IDX
           DISPLAY "close closed " FS
           OPEN I-O REL
           DISPLAY "open rel missing " FS2
           OPEN OUTPUT REL
           MOVE 3 TO RK MOVE "THIRD" TO REL-REC
           WRITE REL-REC
           CLOSE REL
           OPEN I-O REL
           MOVE 3 TO RK
           WRITE REL-REC
           DISPLAY "write rel twice " FS2
           MOVE 7 TO RK
           READ REL
           DISPLAY "read rel missing " FS2
           MOVE 0 TO RK
           START REL KEY > RK
           READ REL NEXT
           DISPLAY "read rel next " FS2 " " RK
           READ REL NEXT
           DISPLAY "read rel past end " FS2 " " RK
           CLOSE REL
           OPEN INPUT NOFS
           DISPLAY "not reached"
           STOP RUN.
